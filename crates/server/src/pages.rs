//! HTML pages (login, consent, messages, sign-out), compiled askama templates with
//! HTML auto-escaping. Pages work without JavaScript and are never framed.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub app_name: Option<&'a str>,
    pub error: Option<&'a str>,
    pub csrf: &'a str,
    pub request: &'a str,
    pub email: &'a str,
    /// Where the form posts: `/login` (authorization) or `/console/login`.
    pub action: &'a str,
    /// Console only: show the organization field (with this value), asked when
    /// the email belongs to several organizations.
    pub organization: Option<&'a str>,
    /// Where "Sign in with a passkey" posts, when passkeys are on.
    pub passkey: Option<&'a str>,
    /// Offer "Sign in with your organization" (the app's organization has an
    /// identity provider, [`crate::upstream`]).
    pub sso: bool,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage<'a> {
    pub error: Option<&'a str>,
    pub csrf: &'a str,
    /// The authorization request carried on (authorization endpoint), or "".
    pub request: &'a str,
    /// The local path to go on to (console, device page), or "".
    pub next: &'a str,
    pub action: &'a str,
    /// Offer a passkey (passkeys are on and the person has one).
    pub passkey: bool,
    /// Ask for a code (the person has an authenticator app, or no passkey can be used).
    pub code: bool,
}

#[derive(Template)]
#[template(path = "account_security.html")]
pub struct AccountSecurityPage<'a> {
    pub email: &'a str,
    pub csrf: String,
    /// Where to go on to after enrolling (a local path), or "".
    pub next: &'a str,
    /// `status`, `setup` (QR code and key), or `codes` (recovery codes, once).
    pub mode: &'a str,
    pub error: Option<&'a str>,
    pub enrolled: bool,
    pub must_enrol: bool,
    pub pending: bool,
    pub recovery_left: u32,
    pub qr: &'a str,
    pub secret: &'a str,
    pub recovery_codes: Vec<String>,
    /// Passkeys are on (the issuer's host is a domain name).
    pub passkeys_on: bool,
    pub passkeys: Vec<PasskeyLine>,
    /// Another passkey may be added (fewer than the bound).
    pub passkey_room: bool,
    /// A passkey was just registered, renamed or removed: what happened.
    pub notice: Option<&'a str>,
}

/// One passkey as the account page lists it.
pub struct PasskeyLine {
    pub id: String,
    pub name: String,
    pub created: String,
    /// When it last signed in, or "" when never.
    pub last_used: String,
}

impl<'a> AccountSecurityPage<'a> {
    pub fn blank(next: &'a str) -> Self {
        AccountSecurityPage {
            email: "",
            csrf: String::new(),
            next,
            mode: "status",
            error: None,
            enrolled: false,
            must_enrol: false,
            pending: false,
            recovery_left: 0,
            qr: "",
            secret: "",
            recovery_codes: Vec::new(),
            passkeys_on: false,
            passkeys: Vec::new(),
            passkey_room: false,
            notice: None,
        }
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub app_description: Option<&'a str>,
    pub user_email: &'a str,
    /// (scope, what it lets the app do)
    pub scopes: Vec<(String, String)>,
    pub csrf: &'a str,
    pub request: &'a str,
    /// Where the form posts: `/consent` (authorization) or `/device/consent`.
    pub action: &'a str,
}

#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub user_email: &'a str,
    pub error: Option<&'a str>,
    pub csrf: &'a str,
    /// Prefilled from `verification_uri_complete` (still to be confirmed).
    pub user_code: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    /// (href, label)
    pub link: Option<(String, String)>,
    /// Shown on error pages, to quote when reporting them.
    pub request_id: Option<String>,
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
pub struct ForgotPasswordPage<'a> {
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "set_password.html")]
pub struct SetPasswordPage<'a> {
    pub heading: &'a str,
    pub email: &'a str,
    /// The link's token, carried from the link to the form (never logged).
    pub token: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
    /// They sign in with an authenticator app too (the page says so).
    pub has_second_factor: bool,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub csrf: &'a str,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub state: Option<&'a str>,
}

const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/// Renders a page with the headers every page carries.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    render_with_csp(status, page, PAGE_CSP)
}

/// [`render`] with a page-specific Content-Security-Policy (the console allows
/// its own script and stylesheet).
pub fn render_with_csp(status: StatusCode, page: &impl Template, csp: &'static str) -> Response {
    let body = match page.render() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response();
        }
    };
    let mut r = (status, Html(body)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn message(
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(String, String)>,
) -> Response {
    render(
        status,
        &MessagePage {
            title,
            message,
            link,
            request_id: (status.is_client_error() || status.is_server_error())
                .then(crate::request_id::current)
                .flatten(),
        },
    )
}

/// A store failure as a page: 503 with `Retry-After` when the store cannot answer
/// now, otherwise 500 with a correlation id that is also logged.
pub fn store_failure(e: gatehouse_core::ports::StoreError) -> Response {
    use gatehouse_core::ports::StoreError;
    match e {
        StoreError::Unavailable(why) => {
            tracing::warn!(reason = %why, "store unavailable");
            let mut r = message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Please try again in a moment.",
                None,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            r
        }
        other => {
            let id = crate::request_id::current_or_new();
            tracing::error!(correlation_id = %id, error = %other, "internal error");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                &format!("An unexpected error occurred. Quote correlation id {id}."),
                None,
            )
        }
    }
}

/// What a scope lets an app do, in words for the consent page (plain text: the
/// scope's name is shown beside it, so it is not quoted again here).
pub fn describe_scope(scope: &str, api_name: Option<&str>) -> String {
    match scope {
        "openid" => "confirm who you are (sign you in)".into(),
        "offline_access" => "keep access while you are not signed in".into(),
        "profile" => "see your name".into(),
        "email" => "see your email address".into(),
        _ => match api_name {
            Some(api) => format!("use {api} on your behalf"),
            None => "act on your behalf with this permission".into(),
        },
    }
}

/// The consent page's lines: each scope with what it lets the app do (API
/// scopes name the API of `apis` that defines them).
pub fn scope_lines(
    apis: &[gatehouse_core::model::Api],
    scope: &gatehouse_core::scope::ScopeSet,
) -> Vec<(String, String)> {
    scope
        .iter()
        .map(|sc| {
            let api = apis
                .iter()
                .find(|a| a.scopes.iter().any(|x| x == sc))
                .map(|a| a.name.as_str());
            (sc.to_owned(), describe_scope(sc, api))
        })
        .collect()
}

/// HTML for text that quotes names in backticks (audit details, core's
/// messages): escaped, each `quoted` part as `<code>`; a lone backtick stays.
pub fn code_spans(text: &str) -> String {
    fn escape(out: &mut String, s: &str) {
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else {
            break;
        };
        escape(&mut out, &rest[..open]);
        out.push_str("<code>");
        escape(&mut out, &rest[open + 1..open + 1 + len]);
        out.push_str("</code>");
        rest = &rest[open + len + 2..];
    }
    escape(&mut out, rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_become_code_and_everything_is_escaped() {
        assert_eq!(
            code_spans("created organization `Acme <Studio>` (acme-studio)"),
            "created organization <code>Acme &lt;Studio&gt;</code> (acme-studio)"
        );
        assert_eq!(code_spans("a `b` c `d"), "a <code>b</code> c `d");
        assert_eq!(code_spans("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
        assert_eq!(code_spans("``"), "<code></code>");
    }

    #[test]
    fn scope_descriptions_have_no_markdown() {
        for s in ["openid", "cfgateway", "products:read"] {
            for api in [Some("Gateway"), None] {
                assert!(!describe_scope(s, api).contains('`'), "{s}");
            }
        }
    }
}
