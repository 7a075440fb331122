//! ID tokens (OpenID Connect Core §2, §3.1.3.6).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::claims::{ClaimsRequest, id_token_user_claims};
use crate::clock::UnixTime;
use crate::model::User;
use crate::scope::ScopeSet;

pub const ID_TOKEN_TTL: i64 = 3600;

/// `at_hash`: the left half of SHA-256 of the access token, base64url (RS256/ES256).
pub fn at_hash(access_token: &str) -> String {
    let d = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&d[..16])
}

pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user: &'a User,
    pub scope: &'a ScopeSet,
    /// What the authorization request's `claims` parameter asked for.
    pub requested: &'a ClaimsRequest,
    pub nonce: Option<&'a str>,
    pub auth_time: UnixTime,
    pub sid: Option<&'a str>,
    /// How the person signed in (RFC 8176).
    pub amr: &'a [String],
    pub access_token: &'a str,
    pub now: UnixTime,
}

/// The ID token of the code flow: the protocol claims, the sign-in's `acr` and
/// `amr` (`pwd`, or `pwd otp mfa` after a second factor; see [`crate::mfa`]), and the user claims
/// the `claims` parameter asked for (Core §5.4: the scopes' claims otherwise come
/// from userinfo). See [`crate::claims`] for the release rule.
pub fn claims(i: IdTokenInput<'_>) -> Value {
    let mut c = Map::new();
    c.insert("iss".into(), json!(i.issuer));
    c.insert("sub".into(), json!(i.user.id));
    c.insert("aud".into(), json!(i.client_id));
    c.insert("exp".into(), json!(i.now + ID_TOKEN_TTL));
    c.insert("iat".into(), json!(i.now));
    c.insert("auth_time".into(), json!(i.auth_time));
    c.insert("at_hash".into(), json!(at_hash(i.access_token)));
    let amr = if i.amr.is_empty() {
        crate::mfa::amr_password()
    } else {
        i.amr.to_vec()
    };
    c.insert("acr".into(), json!(crate::mfa::acr(&amr)));
    c.insert("amr".into(), json!(amr));
    if let Some(n) = i.nonce {
        c.insert("nonce".into(), json!(n));
    }
    if let Some(s) = i.sid {
        c.insert("sid".into(), json!(s));
    }
    for (k, v) in id_token_user_claims(i.user, i.scope, i.requested) {
        c.entry(k).or_insert(v);
    }
    Value::Object(c)
}

/// What an `id_token_hint` says (RP-Initiated Logout 1.0 §2): which app it was
/// issued to, whom it names, and the login session it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    pub client_id: String,
    pub sub: String,
    pub sid: Option<String>,
}

/// Reads verified claims as an ID token of `issuer`, or `None` when they are not
/// one: an access token (`typ: at+jwt`, or `scope`/`client_id`/`jti` claims, RFC
/// 9068 §2.2) is not, whoever signed it. Expiry is not checked (hints may be old).
pub fn hint_from_claims(typ: Option<&str>, claims: &Value, issuer: &str) -> Option<IdTokenHint> {
    if typ.is_some_and(crate::introspect::is_access_token_typ) {
        return None;
    }
    let access_shaped = ["scope", "client_id", "jti"]
        .iter()
        .any(|k| claims.get(k).is_some());
    if access_shaped || claims.get("iss")?.as_str()? != issuer {
        return None;
    }
    claims.get("iat")?.as_i64()?;
    Some(IdTokenHint {
        client_id: claims.get("aud")?.as_str()?.to_owned(),
        sub: claims.get("sub")?.as_str()?.to_owned(),
        sid: claims.get("sid").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OpenID Connect Core §A.3 example values.
        assert_eq!(
            super::at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn access_tokens_are_not_id_token_hints() {
        let id =
            serde_json::json!({"iss": "https://i", "aud": "app", "sub": "u", "iat": 1, "sid": "s"});
        let hint = super::hint_from_claims(Some("JWT"), &id, "https://i").unwrap();
        assert_eq!(
            (hint.client_id.as_str(), hint.sid.as_deref()),
            ("app", Some("s"))
        );
        assert!(super::hint_from_claims(Some("at+jwt"), &id, "https://i").is_none());
        assert!(super::hint_from_claims(Some("JWT"), &id, "https://other").is_none());
        let at = serde_json::json!({"iss": "https://i", "aud": "api", "sub": "u", "iat": 1, "client_id": "app", "scope": "a", "jti": "j"});
        assert!(super::hint_from_claims(Some("JWT"), &at, "https://i").is_none());
    }
}
