//! The caller a validated access token speaks for, as handed to handlers and
//! forwarded upstream. Built only by the validator (from verified JWT claims or an
//! introspection answer), never from anything the caller sent unverified.

use serde::Deserialize;

/// Who is calling: the app (`client_id`), the user it acts for (`subject`), and
/// what that user may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub client_id: String,
    pub subject: String,
    pub org: String,
    pub scopes: Vec<String>,
    pub role: String,
    pub permissions: Vec<String>,
    pub groups: Vec<String>,
    /// The token's id (`jti`) and lifetime (unix seconds).
    pub token_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`, RFC
    /// 9449 §6): such a token is good only with a proof of that key.
    pub dpop_jkt: Option<String>,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The first of `required` this principal lacks.
    pub fn missing_scope<'a>(&self, required: &'a [String]) -> Option<&'a str> {
        required
            .iter()
            .find(|r| !self.has_scope(r))
            .map(String::as_str)
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub(crate) fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(v) => v.iter().any(|a| a == aud),
        }
    }
}

/// The claims of a Gatehouse access token (RFC 9068 plus Gatehouse's own).
/// Time claims are required integers: a wrong type is a malformed token, never a
/// skipped check.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    #[serde(default)]
    pub sub: String,
    pub aud: Audience,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub org: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The app's credential generation when issued.
    #[serde(default)]
    pub cgen: i64,
    /// The user's grant, for tokens a person authorized.
    #[serde(default)]
    pub gid: Option<String>,
    /// The client secret the token was issued with.
    #[serde(default)]
    pub csid: Option<String>,
    /// The DPoP key the token is bound to.
    #[serde(default)]
    pub cnf: Option<gatehouse_core::dpop::Cnf>,
}

impl Claims {
    pub(crate) fn principal(&self) -> Principal {
        Principal {
            scopes: self.scope.split_whitespace().map(str::to_owned).collect(),
            client_id: self.client_id.clone(),
            subject: self.sub.clone(),
            org: self.org.clone(),
            role: self.role.clone(),
            permissions: self.permissions.clone(),
            groups: self.groups.clone(),
            token_id: self.jti.clone(),
            issued_at: self.iat,
            expires_at: self.exp,
            dpop_jkt: self.cnf.as_ref().map(|c| c.jkt.clone()),
        }
    }
}
