//! "Getting started" on an app's page: the vendor guides' curl commands (a
//! token with client credentials, in the body or as HTTP Basic; the
//! authorization URL with PKCE, the code exchange, the refresh) filled in with
//! this app's client id, this server's URLs and the API's audience, ready to copy.
//!
//! The secret is never shown here (it is shown once, when made): the commands
//! read it from `$CLIENT_SECRET`. An app that authenticates with its own keys
//! (`private_key_jwt`) has no secret: its commands send `$CLIENT_ASSERTION`,
//! and the first snippet shows how to make one from the app's private key.

use gatehouse_core::discovery::{AUTHORIZE_PATH, PAR_PATH, TOKEN_PATH};
use gatehouse_core::model::{App, GrantType};

/// One copyable command or URL.
pub struct Snippet {
    /// The element id the copy button names.
    pub id: &'static str,
    pub title: &'static str,
    pub code: String,
}

/// `'text'` for a POSIX shell.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `application/x-www-form-urlencoded` (as a query string carries it).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The scopes the commands ask for: the app's default scopes, else all of its scopes.
fn scope(app: &App) -> String {
    if app.default_scopes.is_empty() {
        app.scopes.join(" ")
    } else {
        app.default_scopes.join(" ")
    }
}

/// How `app` authenticates in a form body, one `--data-urlencode` a line.
fn body_auth(app: &App) -> &'static str {
    if app.client_keys.is_some() {
        "--data-urlencode 'client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer' \\\n\
         --data-urlencode \"client_assertion=$CLIENT_ASSERTION\""
    } else {
        "--data-urlencode \"client_secret=$CLIENT_SECRET\""
    }
}

/// For a `private_key_jwt` app: making a client assertion (RFC 7523 §3) with
/// its private key, good for one request and one minute (the server takes at
/// most five), with an independent library (authlib).
fn make_assertion(app: &App, token_url: &str) -> Option<Snippet> {
    app.client_keys.as_ref()?;
    Some(Snippet {
        id: "gs-assertion",
        title: "Sign a client assertion with the app's private key (PEM; ES256, RS256, PS256 or EdDSA; needs Python's authlib). Make a new one for each request",
        code: format!(
            "CLIENT_ASSERTION=$(python3 -W ignore -c 'import sys, time\n\
             from authlib.oauth2.rfc7523 import private_key_jwt_sign\n\
             print(private_key_jwt_sign(open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], alg=sys.argv[4], claims={{\"exp\": int(time.time()) + 60}}))' \\\n\
             private-key.pem {} {} ES256)",
            sq(&app.client_id),
            sq(token_url),
        ),
    })
}

/// Calling the API with the token (when its audience is its URL).
fn call_api(audience: Option<&str>) -> Option<Snippet> {
    let aud = audience.filter(|a| a.starts_with("https://") || a.starts_with("http://"))?;
    Some(Snippet {
        id: "gs-call",
        title: "Call the API with the access token (at its audience URL, or wherever the API team serves it)",
        code: format!(
            "curl --location --request GET {} \\\n\
             --header \"Authorization: Bearer $ACCESS_TOKEN\"",
            sq(aud)
        ),
    })
}

/// The commands for `app` on the server at `issuer`; `audience` is the API's.
pub fn snippets(app: &App, issuer: &str, audience: Option<&str>) -> Vec<Snippet> {
    let mut out: Vec<Snippet> = make_assertion(app, &format!("{issuer}{TOKEN_PATH}"))
        .into_iter()
        .collect();
    out.extend(commands(app, issuer, audience));
    out
}

/// [`snippets`] after the assertion recipe.
fn commands(app: &App, issuer: &str, audience: Option<&str>) -> Vec<Snippet> {
    let token_url = sq(&format!("{issuer}{TOKEN_PATH}"));
    let auth = body_auth(app);
    let id = &app.client_id;
    let scope = scope(app);
    let mut extra = String::new();
    if !scope.is_empty() {
        extra.push_str(&format!(
            " \\\n--data-urlencode {}",
            sq(&format!("scope={scope}"))
        ));
    }
    if let Some(aud) = audience {
        extra.push_str(&format!(
            " \\\n--data-urlencode {}",
            sq(&format!("audience={aud}"))
        ));
    }
    if app.allows(GrantType::ClientCredentials) {
        let mut out = vec![Snippet {
            id: "gs-token",
            title: "Get an access token",
            code: format!(
                "curl --location --request POST {token_url} \\\n\
                 --header 'Content-Type: application/x-www-form-urlencoded' \\\n\
                 --data-urlencode 'grant_type=client_credentials' \\\n\
                 --data-urlencode {} \\\n\
                 {auth}{extra}",
                sq(&format!("client_id={id}")),
            ),
        }];
        // HTTP Basic carries a secret; a key app has none.
        if app.client_keys.is_none() {
            out.push(Snippet {
                id: "gs-token-basic",
                title: "The same with HTTP Basic authentication (recommended, RFC 6749 §2.3.1)",
                code: format!(
                    "curl --location --request POST {token_url} \\\n\
                     --user \"{}:$CLIENT_SECRET\" \\\n\
                     --data-urlencode 'grant_type=client_credentials'{extra}",
                    enc(id),
                ),
            });
        }
        out.extend(call_api(audience));
        return out;
    }
    let redirect_uri = app.redirect_uris.first().map_or("", String::as_str);
    let authorize = format!(
        "{issuer}{AUTHORIZE_PATH}?client_id={}&response_type=code&redirect_uri={}&scope={}&state=STATE&code_challenge=CODE_CHALLENGE&code_challenge_method=S256",
        enc(id),
        enc(redirect_uri),
        enc(&scope),
    );
    let authorize = if app.require_par {
        pushed_authorize(app, issuer, redirect_uri, &scope)
    } else {
        Snippet {
            id: "gs-authorize",
            title: "The authorization URL (replace STATE and CODE_CHALLENGE)",
            code: authorize,
        }
    };
    let mut out = vec![
        Snippet {
            id: "gs-pkce",
            title: "Make a PKCE code verifier and its challenge (RFC 7636)",
            code: "CODE_VERIFIER=$(openssl rand -base64 48 | tr '+/' '-_' | tr -d '=')\n\
                   CODE_CHALLENGE=$(printf %s \"$CODE_VERIFIER\" | openssl dgst -sha256 -binary | openssl base64 | tr '+/' '-_' | tr -d '=')"
                .to_owned(),
        },
        authorize,
        Snippet {
            id: "gs-code",
            title: "Exchange the code for tokens",
            code: format!(
                "curl --location --request POST {token_url} \\\n\
                 --header 'Content-Type: application/x-www-form-urlencoded' \\\n\
                 --data-urlencode {} \\\n\
                 {auth} \\\n\
                 --data-urlencode 'grant_type=authorization_code' \\\n\
                 --data-urlencode \"code=$CODE\" \\\n\
                 --data-urlencode {} \\\n\
                 --data-urlencode \"code_verifier=$CODE_VERIFIER\"",
                sq(&format!("client_id={id}")),
                sq(&format!("redirect_uri={redirect_uri}")),
            ),
        },
    ];
    if app.scopes.iter().any(|s| s == "offline_access") {
        out.push(Snippet {
            id: "gs-refresh",
            title: "Refresh the access token",
            code: format!(
                "curl --location --request POST {token_url} \\\n\
                 --header 'Content-Type: application/x-www-form-urlencoded' \\\n\
                 --data-urlencode {} \\\n\
                 {auth} \\\n\
                 --data-urlencode 'grant_type=refresh_token' \\\n\
                 --data-urlencode \"refresh_token=$REFRESH_TOKEN\"",
                sq(&format!("client_id={id}")),
            ),
        });
    }
    out.extend(call_api(audience));
    out
}

/// For an app that must push its requests (RFC 9126): the push, then the
/// authorization URL that refers to it.
fn pushed_authorize(app: &App, issuer: &str, redirect_uri: &str, scope: &str) -> Snippet {
    let auth = if app.client_keys.is_some() {
        format!(
            "--data-urlencode {} \\\n{}",
            sq(&format!("client_id={}", app.client_id)),
            body_auth(app)
        )
    } else {
        format!("--user \"{}:$CLIENT_SECRET\"", enc(&app.client_id))
    };
    Snippet {
        id: "gs-authorize",
        title: "Push the authorization request, then open the URL it gives (replace STATE)",
        code: format!(
            "REQUEST_URI=$(curl --silent --request POST {} \\\n\
             {auth} \\\n\
             --data-urlencode 'response_type=code' \\\n\
             --data-urlencode {} \\\n\
             --data-urlencode {} \\\n\
             --data-urlencode 'state=STATE' \\\n\
             --data-urlencode \"code_challenge=$CODE_CHALLENGE\" \\\n\
             --data-urlencode 'code_challenge_method=S256' | jq -r .request_uri)\n\
             echo \"{issuer}{AUTHORIZE_PATH}?client_id={}&request_uri=$REQUEST_URI\"",
            sq(&format!("{issuer}{PAR_PATH}")),
            sq(&format!("redirect_uri={redirect_uri}")),
            sq(&format!("scope={scope}")),
            enc(&app.client_id),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_a_single_quote() {
        assert_eq!(sq("it's"), r"'it'\''s'");
    }

    #[test]
    fn query_values_are_form_encoded() {
        assert_eq!(
            enc("https://a.example/cb?x=1 y"),
            "https%3A%2F%2Fa.example%2Fcb%3Fx%3D1+y"
        );
    }
}
