//! Signing in through an organization's own OpenID Connect provider (the
//! "upstream"): its configuration, the pending sign-in between the redirect
//! there and the way back, and the checks on the ID token it returns (OpenID
//! Connect Core §3.1.3.7). Pure: fetching discovery and JWKS, the redirect and
//! the session are the server's; storing is [`UpstreamStore`]'s.
//!
//! Signatures are checked with the project's own JWS code
//! ([`crate::client_assertion::ClientKeySet`]): asymmetric algorithms only
//! (RS256, PS256, ES256, EdDSA), never `none` or HMAC.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::client_assertion::{self, ClientKeySet};
use crate::clock::UnixTime;
use crate::model::AuditEvent;
use crate::ports::StoreResult;

/// Most e-mail domains one provider may own.
pub const MAX_DOMAINS: usize = 20;
/// Longest issuer URL accepted.
pub const MAX_ISSUER: usize = 512;
/// Longest client id / secret accepted.
pub const MAX_CLIENT_ID: usize = 256;
pub const MAX_CLIENT_SECRET: usize = 512;
/// How long a person has at the upstream before coming back (seconds).
pub const LOGIN_TTL: UnixTime = 10 * 60;
/// Clocks may disagree by this much (seconds) for `exp` and `iat`.
pub const LEEWAY: i64 = 120;
/// `amr` of a sign-in through the upstream provider (RFC 8176 §2: `fed`
/// is not registered there; it is the value OpenID Connect deployments use
/// for federated authentication).
pub const AMR_FEDERATED: &str = "fed";

/// An organization's upstream provider, as stored (the secret sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamProvider {
    pub org_id: String,
    /// The issuer, exactly as its ID tokens' `iss` (no trailing slash added).
    pub issuer: String,
    pub client_id: String,
    /// The client secret sealed under the key-encryption key ([`secret_aad`]).
    pub sealed_client_secret: String,
    /// Lower-case e-mail domains whose people sign in there.
    pub domains: Vec<String>,
    /// Whether people of those domains may still sign in with a local password.
    pub allow_passwords: bool,
    /// The role of people created on their first sign-in.
    pub default_role: String,
    pub updated_at: UnixTime,
    /// Whether the provider's word that its sign-in was multi-factor (its ID
    /// token's `amr`, see [`upstream_mfa`]) makes the local session multi-factor.
    pub trust_upstream_mfa: bool,
}

impl UpstreamProvider {
    /// Whether `email`'s domain is one of this provider's.
    pub fn owns(&self, email: &str) -> bool {
        domain_of(email).is_some_and(|d| self.domains.iter().any(|x| x == d))
    }
}

/// A sign-in sent to the upstream, until it comes back (single use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamLogin {
    /// SHA-256 of the `state` sent (the browser's cookie holds the value).
    pub state_digest: String,
    pub org_id: String,
    pub nonce: String,
    /// PKCE (RFC 7636) verifier whose S256 challenge was sent.
    pub code_verifier: String,
    /// Where the person goes on to once back (never a URL from the request).
    pub continuation: Continuation,
    pub expires_at: UnixTime,
}

/// What a sign-in through the upstream continues once the person is back.
/// Each variant names a place of this server; none carries a URL, so the way
/// back cannot be turned into an open redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    /// The authorization request (the sign-in form's `request`, validated
    /// again when it continues).
    Authorize(String),
    /// The console's home.
    Console,
    /// The device page, with the user code it carried (normalised, or "").
    Device { user_code: String },
}

const STORED_AUTHORIZE: &str = "authorize:";
const STORED_CONSOLE: &str = "console";
const STORED_DEVICE: &str = "device:";

impl Continuation {
    /// The stored form (one text column).
    pub fn to_stored(&self) -> String {
        match self {
            Continuation::Authorize(r) => format!("{STORED_AUTHORIZE}{r}"),
            Continuation::Console => STORED_CONSOLE.to_owned(),
            Continuation::Device { user_code } => format!("{STORED_DEVICE}{user_code}"),
        }
    }

    /// Reads [`Self::to_stored`]'s form. A value without a known tag was
    /// stored before continuations had kinds: an authorization request.
    pub fn from_stored(s: &str) -> Self {
        if let Some(r) = s.strip_prefix(STORED_AUTHORIZE) {
            Continuation::Authorize(r.to_owned())
        } else if s == STORED_CONSOLE {
            Continuation::Console
        } else if let Some(c) = s.strip_prefix(STORED_DEVICE) {
            Continuation::Device {
                user_code: c.to_owned(),
            }
        } else {
            Continuation::Authorize(s.to_owned())
        }
    }
}

/// Upstream providers and pending upstream sign-ins.
#[async_trait]
pub trait UpstreamStore: Send + Sync {
    /// The organization's provider; NotFound without one.
    async fn upstream_provider(&self, org_id: &str) -> StoreResult<UpstreamProvider>;
    /// Creates or replaces the organization's provider, with `audit`.
    async fn set_upstream_provider(
        &self,
        provider: &UpstreamProvider,
        audit: &AuditEvent,
    ) -> StoreResult<()>;
    /// Removes it, with `audit`; NotFound when there is none.
    async fn remove_upstream_provider(&self, org_id: &str, audit: &AuditEvent) -> StoreResult<()>;
    /// Keeps a pending sign-in (and drops expired ones).
    async fn insert_upstream_login(&self, login: &UpstreamLogin, now: UnixTime) -> StoreResult<()>;
    /// Takes the pending sign-in of `state_digest` if still live: it works
    /// once (of two claims at once, one wins); NotFound otherwise.
    async fn claim_upstream_login(
        &self,
        state_digest: &str,
        now: UnixTime,
    ) -> StoreResult<UpstreamLogin>;
    /// The providers that list `domain` (normalised, see [`normalize_domain`])
    /// among theirs, at most `limit`, oldest organization first.
    async fn upstream_providers_for_domain(
        &self,
        domain: &str,
        limit: u32,
    ) -> StoreResult<Vec<UpstreamProvider>>;
}

/// The additional data the client secret is sealed with: bound to its organization.
pub fn secret_aad(org_id: &str) -> String {
    format!("gatehouse-upstream-client-secret:{org_id}")
}

/// The domain of an e-mail address (already lower-case).
pub fn domain_of(email: &str) -> Option<&str> {
    email
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
}

/// A domain as configured: lower-case labels of letters, digits and dashes,
/// with at least one dot.
pub fn normalize_domain(d: &str) -> Result<String, String> {
    let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if d.len() > 253 || !d.contains('.') || !d.split('.').all(label_ok) {
        return Err(format!("`{d}` is not a domain name (e.g. acme.com)"));
    }
    Ok(d)
}

/// Whether an upstream URL (the issuer, or an endpoint its discovery names)
/// may be called: HTTPS on a DNS name; in development mode also
/// `http://localhost` / `http://127.0.0.1`. The outbound client resolves names
/// to public addresses only, so a private address is never reached.
pub fn url_allowed(url: &str, dev: bool) -> Result<(), &'static str> {
    let u = url::Url::parse(url).map_err(|_| "is not a URL")?;
    if !u.username().is_empty() || u.password().is_some() || u.fragment().is_some() {
        return Err("must not carry credentials or a fragment");
    }
    match (u.scheme(), u.host()) {
        ("https", Some(url::Host::Domain(_))) => Ok(()),
        ("http", Some(url::Host::Domain("localhost"))) if dev => Ok(()),
        ("http" | "https", Some(url::Host::Ipv4(ip))) if dev && ip.is_loopback() => Ok(()),
        _ => Err(if dev {
            "must be https on a DNS name (or http://localhost, http://127.0.0.1 in development mode)"
        } else {
            "must be https on a DNS name"
        }),
    }
}

/// The parts of an upstream's discovery document a sign-in needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamMetadata {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    /// Asked for the e-mail when the ID token lacks it (Core §5.3).
    pub userinfo_endpoint: Option<String>,
}

/// Reads discovery (OpenID Connect Discovery §4.3: its `issuer` must be the
/// configured one exactly), and checks each endpoint with [`url_allowed`].
pub fn parse_metadata(doc: &Value, issuer: &str, dev: bool) -> Result<UpstreamMetadata, String> {
    if doc["issuer"].as_str() != Some(issuer) {
        return Err("its discovery document names another issuer".into());
    }
    let url = |k: &str| -> Result<String, String> {
        let v = doc[k]
            .as_str()
            .ok_or_else(|| format!("its discovery document has no `{k}`"))?;
        url_allowed(v, dev).map_err(|why| format!("its `{k}` {why}"))?;
        Ok(v.to_owned())
    };
    Ok(UpstreamMetadata {
        authorization_endpoint: url("authorization_endpoint")?,
        token_endpoint: url("token_endpoint")?,
        jwks_uri: url("jwks_uri")?,
        userinfo_endpoint: match doc.get("userinfo_endpoint") {
            None | Some(Value::Null) => None,
            Some(_) => Some(url("userinfo_endpoint")?),
        },
    })
}

/// What the ID token must say.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: UnixTime,
}

/// Who the upstream says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    pub sub: String,
    /// Lower-case, verified by the upstream.
    pub email: String,
    pub name: Option<String>,
    /// The provider's `amr` (RFC 8176), as it said: see [`upstream_mfa`].
    pub amr: Vec<String>,
}

/// Why an ID token was refused (told in the log and the audit detail, never
/// with the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token's signature: {0}")]
    Signature(String),
    #[error("the ID token's {0}")]
    Claims(&'static str),
    #[error("the ID token's e-mail address is not verified by the provider")]
    EmailNotVerified,
    #[error("the userinfo answer's {0}")]
    Userinfo(&'static str),
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    azp: Option<String>,
    exp: Option<Value>,
    iat: Option<Value>,
    nonce: Option<String>,
    email: Option<String>,
    email_verified: Option<Value>,
    name: Option<String>,
    amr: Option<Value>,
}

fn number(v: &Option<Value>) -> Option<i64> {
    v.as_ref()
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

/// Verifies the upstream's ID token: the signature with its JWKS, then
/// `iss`, `aud` (and `azp` when several audiences), `exp`, `iat`, `nonce`
/// (Core §3.1.3.7). The e-mail is settled after: [`VerifiedIdToken`].
pub fn verify_id_token(
    token: &str,
    keys: &ClientKeySet,
    e: &Expected<'_>,
) -> Result<VerifiedIdToken, IdTokenError> {
    let parsed =
        client_assertion::parse(token).map_err(|x| IdTokenError::Signature(x.to_string()))?;
    parsed
        .verify_signature(keys)
        .map_err(|x| IdTokenError::Signature(x.to_string()))?;
    let payload = token
        .split('.')
        .nth(1)
        .and_then(|p| B64.decode(p).ok())
        .ok_or(IdTokenError::Claims("payload is not base64url"))?;
    let c: Claims = serde_json::from_slice(&payload)
        .map_err(|_| IdTokenError::Claims("payload is not JSON"))?;
    check_claims(c, e)
}

fn check_claims(c: Claims, e: &Expected<'_>) -> Result<VerifiedIdToken, IdTokenError> {
    use IdTokenError::Claims as Bad;
    if c.iss.as_deref() != Some(e.issuer) {
        return Err(Bad("`iss` is not the provider's issuer"));
    }
    let auds: Vec<&str> = match &c.aud {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(l)) => l.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !auds.contains(&e.client_id) {
        return Err(Bad("`aud` does not name this client"));
    }
    if auds.len() > 1 && c.azp.as_deref() != Some(e.client_id) {
        return Err(Bad("`azp` does not name this client"));
    }
    match number(&c.exp) {
        Some(exp) if exp + LEEWAY > e.now => {}
        _ => return Err(Bad("`exp` is missing or has passed")),
    }
    if number(&c.iat).is_none_or(|iat| iat > e.now + LEEWAY) {
        return Err(Bad("`iat` is missing or in the future"));
    }
    let nonce_ok = c
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(e.nonce.as_bytes())));
    if !nonce_ok {
        return Err(Bad("`nonce` is not the one sent"));
    }
    let sub = c
        .sub
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or(Bad("`sub` is missing"))?;
    Ok(VerifiedIdToken {
        sub,
        email: c.email,
        email_verified: c.email_verified,
        name: c.name,
        amr: amr_of(c.amr.as_ref()),
    })
}

/// A verified ID token, before its e-mail is settled: from the token itself
/// ([`VerifiedIdToken::identity`]), or, when the token lacks `email` or
/// `email_verified` (providers that release claims of the `email` scope only
/// at userinfo with the code flow, Core §5.4), from the provider's userinfo
/// answer ([`VerifiedIdToken::with_userinfo`]).
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedIdToken {
    pub sub: String,
    email: Option<String>,
    email_verified: Option<Value>,
    name: Option<String>,
    amr: Vec<String>,
}

impl VerifiedIdToken {
    /// Whether the e-mail must be asked of the userinfo endpoint.
    pub fn needs_userinfo(&self) -> bool {
        self.email.is_none() || self.email_verified.is_none()
    }

    /// Who signed in, by the token's own `email`.
    pub fn identity(self) -> Result<UpstreamIdentity, IdTokenError> {
        let email = verified_email(self.email, self.email_verified.as_ref())?;
        Ok(UpstreamIdentity {
            sub: self.sub,
            email,
            name: clean_name(self.name),
            amr: self.amr,
        })
    }

    /// Who signed in, by the userinfo answer's `email`: its `sub` must be the
    /// token's (Core §5.3.2: otherwise the answer is not about this person).
    pub fn with_userinfo(self, info: &Value) -> Result<UpstreamIdentity, IdTokenError> {
        if info["sub"].as_str() != Some(self.sub.as_str()) {
            return Err(IdTokenError::Userinfo("`sub` is not the ID token's"));
        }
        let email = info["email"].as_str().map(str::to_owned);
        let email = verified_email(email, info.get("email_verified"))?;
        let name = self
            .name
            .or_else(|| info["name"].as_str().map(str::to_owned));
        Ok(UpstreamIdentity {
            sub: self.sub,
            email,
            name: clean_name(name),
            amr: self.amr,
        })
    }
}

fn verified_email(email: Option<String>, verified: Option<&Value>) -> Result<String, IdTokenError> {
    let email = email
        .map(|m| m.trim().to_lowercase())
        .filter(|m| m.len() <= 254 && domain_of(m).is_some())
        .ok_or(IdTokenError::Claims(
            "`email` is missing: ask for the `email` scope",
        ))?;
    // Core §5.1: a boolean; a string "true" is tolerated (some providers send it).
    let ok = matches!(verified, Some(Value::Bool(true)))
        || matches!(verified, Some(Value::String(s)) if s == "true");
    if !ok {
        return Err(IdTokenError::EmailNotVerified);
    }
    Ok(email)
}

fn clean_name(name: Option<String>) -> Option<String> {
    name.map(|n| n.trim().chars().take(100).collect::<String>())
        .filter(|n| !n.is_empty() && !n.chars().any(char::is_control))
}

/// Most `amr` values kept, and the longest one: anything past is ignored.
const MAX_AMR: usize = 10;
const MAX_AMR_VALUE: usize = 32;

/// The `amr` claim: a list of short strings (RFC 8176 §1), else nothing.
fn amr_of(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(list)) = v else {
        return Vec::new();
    };
    list.iter()
        .filter_map(Value::as_str)
        .filter(|m| !m.is_empty() && m.len() <= MAX_AMR_VALUE)
        .take(MAX_AMR)
        .map(str::to_owned)
        .collect()
}

/// Whether the provider says its sign-in was multi-factor: its `amr` holds
/// `mfa` (RFC 8176 §2), or `otp` or `hwk` beside another method (e.g.
/// `["pwd", "otp"]`: a password and a one-time code). Anything else, e.g.
/// `["otp"]` or `["hwk"]` alone, is one factor.
pub fn upstream_mfa(amr: &[String]) -> bool {
    let has = |m: &str| amr.iter().any(|x| x == m);
    if has(crate::mfa::AMR_MFA) {
        return true;
    }
    let second = has(crate::mfa::AMR_OTP) || has("hwk");
    let mut distinct: Vec<&str> = amr.iter().map(String::as_str).collect();
    distinct.sort_unstable();
    distinct.dedup();
    second && distinct.len() > 1
}

/// The local session's `amr` after signing in through `provider`: `fed`, and
/// `mfa` too when the provider is trusted for it and said so.
pub fn session_amr(provider: &UpstreamProvider, id: &UpstreamIdentity) -> Vec<String> {
    let mut amr = vec![AMR_FEDERATED.to_owned()];
    if provider.trust_upstream_mfa && upstream_mfa(&id.amr) {
        amr.push(crate::mfa::AMR_MFA.to_owned());
    }
    amr
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn claims(v: Value) -> Claims {
        serde_json::from_value(v).unwrap()
    }

    fn good() -> Value {
        json!({"iss": "https://idp.acme.com", "sub": "u1", "aud": "gh", "exp": NOW + 60,
               "iat": NOW, "nonce": "n1", "email": "Ann@Acme.com", "email_verified": true})
    }

    fn verified(v: Value) -> Result<VerifiedIdToken, IdTokenError> {
        check_claims(
            claims(v),
            &Expected {
                issuer: "https://idp.acme.com",
                client_id: "gh",
                nonce: "n1",
                now: NOW,
            },
        )
    }

    fn check(v: Value) -> Result<UpstreamIdentity, IdTokenError> {
        verified(v)?.identity()
    }

    #[test]
    fn a_good_token_names_the_verified_email() {
        let id = check(good()).unwrap();
        assert_eq!(id.email, "ann@acme.com");
        assert_eq!(id.sub, "u1");
    }

    #[test]
    fn each_claim_rule_refuses() {
        let with = |k: &str, v: Value| {
            let mut c = good();
            c[k] = v;
            check(c).unwrap_err()
        };
        assert!(matches!(
            with("iss", json!("https://evil")),
            IdTokenError::Claims(_)
        ));
        assert!(matches!(
            with("aud", json!("other")),
            IdTokenError::Claims(_)
        ));
        assert!(matches!(
            with("aud", json!(["gh", "x"])),
            IdTokenError::Claims(_)
        ));
        assert!(matches!(
            with("exp", json!(NOW - 600)),
            IdTokenError::Claims(_)
        ));
        assert!(matches!(
            with("nonce", json!("n2")),
            IdTokenError::Claims(_)
        ));
        assert_eq!(
            with("email_verified", json!(false)),
            IdTokenError::EmailNotVerified
        );
        assert_eq!(
            with("email_verified", Value::Null),
            IdTokenError::EmailNotVerified
        );
    }

    #[test]
    fn without_email_in_the_token_userinfo_of_the_same_sub_settles_it() {
        let mut c = good();
        c.as_object_mut().unwrap().remove("email_verified");
        let v = verified(c).unwrap();
        assert!(v.needs_userinfo());
        assert!(!verified(good()).unwrap().needs_userinfo());
        let other = json!({"sub": "u2", "email": "ann@acme.com", "email_verified": true});
        assert_eq!(
            v.clone().with_userinfo(&other).unwrap_err(),
            IdTokenError::Userinfo("`sub` is not the ID token's")
        );
        let unverified = json!({"sub": "u1", "email": "ann@acme.com"});
        assert_eq!(
            v.clone().with_userinfo(&unverified).unwrap_err(),
            IdTokenError::EmailNotVerified
        );
        let info =
            json!({"sub": "u1", "email": "Eve@Acme.com", "email_verified": true, "name": "Eve"});
        let id = v.with_userinfo(&info).unwrap();
        assert_eq!(
            id.email, "eve@acme.com",
            "userinfo's e-mail, not the token's"
        );
        assert_eq!(id.name.as_deref(), Some("Eve"));
    }

    #[test]
    fn upstream_amr_counts_as_mfa_only_when_trusted_and_multi_factor() {
        let amr = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(upstream_mfa(&amr(&["pwd", "mfa"])));
        assert!(upstream_mfa(&amr(&["mfa"])));
        assert!(upstream_mfa(&amr(&["pwd", "otp"])));
        assert!(upstream_mfa(&amr(&["hwk", "pin"])));
        assert!(!upstream_mfa(&amr(&["otp"])));
        assert!(!upstream_mfa(&amr(&["otp", "otp"])));
        assert!(!upstream_mfa(&amr(&["pwd"])));
        assert!(!upstream_mfa(&amr(&["pwd", "kba"])));
        assert!(!upstream_mfa(&[]));

        let mut c = good();
        c["amr"] = json!(["pwd", "otp", 7]);
        let id = check(c).unwrap();
        assert_eq!(id.amr, amr(&["pwd", "otp"]));
        let mut p = UpstreamProvider {
            org_id: "o".into(),
            issuer: "https://idp.acme.com".into(),
            client_id: "gh".into(),
            sealed_client_secret: String::new(),
            domains: vec!["acme.com".into()],
            allow_passwords: false,
            default_role: "member".into(),
            updated_at: 0,
            trust_upstream_mfa: false,
        };
        assert_eq!(session_amr(&p, &id), amr(&["fed"]));
        p.trust_upstream_mfa = true;
        assert_eq!(session_amr(&p, &id), amr(&["fed", "mfa"]));
        let mut c = good();
        c["amr"] = json!("mfa");
        assert_eq!(
            session_amr(&p, &check(c).unwrap()),
            amr(&["fed"]),
            "not a list"
        );
    }

    #[test]
    fn domains_and_urls() {
        assert_eq!(normalize_domain(" @Acme.COM ").unwrap(), "acme.com");
        assert!(normalize_domain("acme").is_err());
        assert!(normalize_domain("a_b.com").is_err());
        assert!(url_allowed("https://idp.acme.com", false).is_ok());
        assert!(url_allowed("http://idp.acme.com", false).is_err());
        assert!(url_allowed("http://127.0.0.1:9000", false).is_err());
        assert!(url_allowed("http://127.0.0.1:9000", true).is_ok());
        assert!(url_allowed("https://10.0.0.1", true).is_err());
    }

    #[test]
    fn continuations_read_back_as_stored_and_untagged_ones_are_authorization_requests() {
        for c in [
            Continuation::Authorize("client_id=a&redirect_uri=https%3A%2F%2Fx".into()),
            Continuation::Authorize(String::new()),
            Continuation::Console,
            Continuation::Device {
                user_code: "BCDFGHJK".into(),
            },
            Continuation::Device {
                user_code: String::new(),
            },
        ] {
            assert_eq!(Continuation::from_stored(&c.to_stored()), c);
        }
        assert_eq!(
            Continuation::from_stored("client_id=a&state=console"),
            Continuation::Authorize("client_id=a&state=console".into())
        );
    }
}
