//! A browser for the HTML steps of the authorization flow: a cookie jar, no
//! automatic redirects, and just enough HTML reading to fill in the forms.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use url::Url;

use serde_json::Value;

use crate::helpers::{CALLBACK, PASSWORD, Params, TestApp, WebApp, authorize_params, code_params};

pub struct Browser {
    pub http: reqwest::Client,
    base: String,
}

/// One response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Self::from(app, None, HeaderMap::new())
    }

    /// A browser connecting from `local` (another loopback address, to be another
    /// client) and sending `headers` with every request (e.g. `X-Forwarded-For`).
    pub fn from(app: &TestApp, local: Option<std::net::IpAddr>, headers: HeaderMap) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .local_address(local)
                .default_headers(headers)
                .build()
                .unwrap(),
            base: app.base.clone(),
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        Page::read(self.http.get(url).send().await.unwrap()).await
    }

    /// `GET /connect/authorize?…`
    pub async fn authorize(&self, params: &Params) -> Page {
        self.get(&format!(
            "{}/connect/authorize?{}",
            self.base,
            params.query()
        ))
        .await
    }

    /// Posts a form to a path of the server, as the page's own form would.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Page::read(
            self.http
                .post(format!("{}{path}", self.base))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Fills in the sign-in form of `page` and submits it.
    pub async fn login(&self, page: &Page, email: &str, password: &str) -> Page {
        page.assert_login_form();
        let csrf = page.hidden("csrf_token").expect("csrf_token field");
        let request = page.hidden("request").expect("request field");
        self.post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("request", &request),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    /// Presses "Yes, Allow" (`allow`) or "No" (`deny`) on the consent page.
    pub async fn consent(&self, page: &Page, decision: &str) -> Page {
        assert!(page.is_consent(), "not the consent page: {page:?}");
        let csrf = page.hidden("csrf_token").expect("csrf_token field");
        let request = page.hidden("request").expect("request field");
        self.post(
            "/consent",
            &[
                ("csrf_token", &csrf),
                ("request", &request),
                ("decision", decision),
            ],
        )
        .await
    }

    /// Authorize, sign in as `email` if asked, allow if asked: the redirect back
    /// to the app.
    pub async fn sign_in_and_allow(&self, params: &Params, email: &str) -> Url {
        let mut page = self.authorize(params).await;
        if page.is_login() {
            page = self.login(&page, email, PASSWORD).await;
        }
        if page.is_consent() {
            page = self.consent(&page, "allow").await;
        }
        page.redirect()
    }
}

impl Page {
    pub async fn read(resp: reqwest::Response) -> Page {
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    /// The value of the `<input … name="{name}" value="…">`, unescaped.
    pub fn hidden(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\""))?;
        let rest = &self.body[at..];
        let end = rest.find('>')?;
        let tag = &rest[..end];
        let v = tag.find("value=\"")? + "value=\"".len();
        let len = tag[v..].find('"')?;
        Some(unescape(&tag[v..v + len]))
    }

    pub fn is_login(&self) -> bool {
        self.body.contains("action=\"/login\"") && self.body.contains(">Sign in</button>")
    }

    pub fn is_consent(&self) -> bool {
        self.body.contains("action=\"/consent\"")
            && self.body.contains(">Yes, Allow</button>")
            && self.body.contains(">No</button>")
    }

    pub fn assert_login_form(&self) {
        assert!(self.is_login(), "not the login page: {self:?}");
    }

    /// The `Location` of a 303, parsed.
    pub fn redirect(&self) -> Url {
        assert_eq!(self.status, StatusCode::SEE_OTHER, "{self:?}");
        Url::parse(self.headers["location"].to_str().unwrap()).unwrap()
    }

    /// The `Location` of a 303 back to the app's callback; its query parameters.
    pub fn callback(&self) -> Params {
        callback_params(&self.redirect())
    }

    /// The `href` of the first link on a page (unescaped).
    pub fn link(&self) -> Option<String> {
        let at = self.body.find("<a ")?;
        let rest = &self.body[at..];
        let h = rest.find("href=\"")? + "href=\"".len();
        let len = rest[h..].find('"')?;
        Some(unescape(&rest[h..h + len]))
    }
}

/// The query parameters of a redirect to [`CALLBACK`], asserting it goes there.
pub fn callback_params(url: &Url) -> Params {
    assert_eq!(
        format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap(),
            url.path()
        ),
        CALLBACK,
        "{url}"
    );
    url.query_pairs()
        .fold(Params::new(), |p, (k, v)| p.set(&k, &v))
}

/// Reverses HTML escaping: the named entities askama writes and numeric ones.
pub fn unescape(s: &str) -> String {
    html_escape::decode_html_entities(s).into_owned()
}

/// Asserts a 303 back to the callback carrying `error` (its `error` and
/// `error_description` pinned), the request's `state` and `iss`, and no code.
pub fn expect_error_redirect(app: &TestApp, page: &Page, error: &str) -> Params {
    let p = page.callback();
    assert_eq!(p.get("error"), Some(error), "{p:?}");
    crate::helpers::pin_error(&serde_json::json!({
        "error": p.get("error"),
        "error_description": p.get("error_description"),
    }));
    assert_eq!(p.get("state"), Some("st-8f2a"), "{p:?}");
    assert_eq!(p.get("iss"), Some(app.base.as_str()), "{p:?}");
    assert_eq!(p.get("code"), None);
    p
}

/// Asserts an HTML error page that sends the user nowhere.
pub fn expect_error_page(page: &Page, status: u16, says: &str) {
    assert_eq!(page.status, status, "{page:?}");
    assert!(page.headers.get("location").is_none(), "{page:?}");
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.body.contains(says), "{}", page.body);
    crate::helpers::pin_text(&page_text(&page.body));
}

/// What a person reads on a page: the body's text without markup, one line per
/// block, entities decoded.
pub fn page_text(html: &str) -> String {
    let body = html
        .split_once("<body")
        .and_then(|(_, b)| b.split_once('>'))
        .map_or(html, |(_, b)| b)
        .split("</body>")
        .next()
        .unwrap_or_default();
    let mut text = String::new();
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        text.push('\n');
        let tag = &rest[open..];
        // Scripts and styles are not read.
        let skip_to = ["<script", "<style"]
            .iter()
            .find(|t| tag.starts_with(**t))
            .and_then(|t| tag.find(&format!("</{}", &t[1..])));
        let from = skip_to.unwrap_or(0);
        rest = match tag[from..].find('>') {
            Some(close) => &tag[from + close + 1..],
            None => "",
        };
    }
    text.push_str(rest);
    unescape(&text)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a response set (or cleared) the cookie `name`.
pub fn sets_cookie(page: &Page, name: &str) -> Option<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// Signs `email` in through the pages (allowing if asked) and returns the code.
pub async fn code_for(browser: &Browser, params: &Params, email: &str) -> String {
    let back = callback_params(&browser.sign_in_and_allow(params, email).await);
    back.get("code").expect("a code").to_owned()
}

/// The whole flow with [`authorize_params`]: the token endpoint's JSON reply.
pub async fn tokens_for(app: &TestApp, web: &WebApp, email: &str) -> Value {
    let browser = Browser::new(app);
    let code = code_for(&browser, &authorize_params(web), email).await;
    let resp = app.web_token(web, &code_params(&code)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}
