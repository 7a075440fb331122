//! A person's claims and who learns which: the `claims` request parameter
//! (OpenID Connect Core §5.5), the claims each scope allows (§5.4), and the
//! authentication context (`acr`, `amr`) of the sign-in.
//!
//! The release rule, one for the ID token and userinfo alike: a claim about the
//! user is released only when a granted scope allows it (`profile`, `email`),
//! and only when the user has a value (no `null`s). userinfo answers every
//! claim the scopes allow; the ID token of the code flow carries the protocol
//! claims, `acr`/`amr`, and the allowed claims the `claims` parameter asked for
//! in its `id_token` member. So the parameter chooses *where* a claim goes and
//! never widens what the user consented to. Requests are voluntary unless
//! `essential`, and even then an unavailable claim is left out rather than
//! failing the sign-in (§5.5.1), except `acr`: an essential `acr` whose
//! `value`/`values` Gatehouse cannot meet fails the request (§5.5.1.1).
//! A `sub` asked for by value is answered only for that user
//! ([`crate::authorize::next_step`]); `value`/`values` on other claims do not
//! filter: the user's value is sent.
//! Nothing here does I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::model::User;
use crate::scope::ScopeSet;

/// The longest `claims` parameter accepted (bytes of JSON).
pub const MAX_CLAIMS_PARAM: usize = 4096;
/// At most this many claims per member (`id_token`, `userinfo`).
pub const MAX_CLAIMS_PER_MEMBER: usize = 64;
/// The longest claim name accepted.
pub const MAX_CLAIM_NAME: usize = 64;
/// The longest `acr_values` parameter accepted.
pub const MAX_ACR_VALUES: usize = 1024;

/// The authentication context class of a password sign-in (discovery's
/// `acr_values_supported`, with [`ACR_MFA`]).
pub const ACR_PASSWORD: &str = "urn:gatehouse:acr:pwd";
/// The authentication context class of a sign-in with a second factor
/// (`amr` holds `mfa`): what `acr_values` names to ask for one (step-up).
pub const ACR_MFA: &str = "urn:gatehouse:acr:mfa";
/// The authentication method reference of a password sign-in (RFC 8176 §2).
pub const AMR_PASSWORD: &str = "pwd";

/// Claims the `profile` scope allows (Core §5.4, those Gatehouse keeps).
pub const PROFILE_CLAIMS: &[&str] = &[
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "locale",
    "zoneinfo",
    "updated_at",
];
/// Claims the `email` scope allows.
pub const EMAIL_CLAIMS: &[&str] = &["email", "email_verified"];

/// Claims of an ID token that say how the token came about, not who the user is.
pub const PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "acr",
    "amr",
];

/// Every claim Gatehouse can return (discovery's `claims_supported`).
pub fn supported() -> Vec<&'static str> {
    let mut all = PROTOCOL_CLAIMS.to_vec();
    all.extend_from_slice(PROFILE_CLAIMS);
    all.extend_from_slice(EMAIL_CLAIMS);
    all
}

/// One requested claim (Core §5.5.1): `null` in the request is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

impl ClaimRequest {
    /// Whether `v` is acceptable to this request (any value when neither
    /// `value` nor `values` was given).
    pub fn accepts(&self, v: &Value) -> bool {
        match (&self.value, &self.values) {
            (None, None) => true,
            (value, values) => {
                value.as_ref() == Some(v) || values.as_ref().is_some_and(|vs| vs.contains(v))
            }
        }
    }
}

/// The `claims` parameter as kept with a grant: the members Gatehouse uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id_token: BTreeMap<String, ClaimRequest>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub userinfo: BTreeMap<String, ClaimRequest>,
}

impl ClaimsRequest {
    /// Parses the `claims` parameter; `Err` is an `invalid_request` description.
    /// Members other than `id_token` and `userinfo` are ignored (§5.5: extensions).
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > MAX_CLAIMS_PARAM {
            return Err(format!("`claims` is longer than {MAX_CLAIMS_PARAM} bytes"));
        }
        let Ok(Value::Object(top)) = serde_json::from_str::<Value>(raw) else {
            return Err("`claims` must be a JSON object".into());
        };
        Ok(Self {
            id_token: member(&top, "id_token")?,
            userinfo: member(&top, "userinfo")?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.id_token.is_empty() && self.userinfo.is_empty()
    }

    /// The stored form: `None` when nothing was requested.
    pub fn to_stored(&self) -> Option<String> {
        if self.is_empty() {
            None
        } else {
            serde_json::to_string(self).ok()
        }
    }

    /// Reads the stored form back (`None` or unreadable: nothing requested).
    pub fn from_stored(stored: Option<&str>) -> Self {
        stored
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }

    /// An essential `acr` Gatehouse cannot meet (§5.5.1.1): the description of
    /// the failure, to be answered as a failed authentication.
    pub fn unmet_acr(&self) -> Option<&'static str> {
        let acr = self.id_token.get("acr")?;
        (acr.essential && !acr.accepts(&json!(ACR_PASSWORD)) && !acr.accepts(&json!(ACR_MFA)))
            .then_some(
                "the essential `acr` requested cannot be met: Gatehouse knows `urn:gatehouse:acr:pwd` and `urn:gatehouse:acr:mfa`",
            )
    }

    /// Whether an essential `acr` accepts only [`ACR_MFA`] (of the classes
    /// Gatehouse knows): the sign-in must then have a second factor.
    pub fn essential_mfa(&self) -> bool {
        self.id_token.get("acr").is_some_and(|acr| {
            acr.essential && acr.accepts(&json!(ACR_MFA)) && !acr.accepts(&json!(ACR_PASSWORD))
        })
    }
}

fn member(top: &Map<String, Value>, name: &str) -> Result<BTreeMap<String, ClaimRequest>, String> {
    let Some(m) = top.get(name) else {
        return Ok(BTreeMap::new());
    };
    let Value::Object(m) = m else {
        return Err(format!("`claims.{name}` must be a JSON object"));
    };
    if m.len() > MAX_CLAIMS_PER_MEMBER {
        return Err(format!(
            "`claims.{name}` names more than {MAX_CLAIMS_PER_MEMBER} claims"
        ));
    }
    let mut out = BTreeMap::new();
    for (claim, spec) in m {
        if claim.is_empty() || claim.len() > MAX_CLAIM_NAME || claim.chars().any(char::is_control) {
            return Err(format!(
                "`claims.{name}` has a claim name that is empty, longer than {MAX_CLAIM_NAME} bytes or holds control characters"
            ));
        }
        let req = match spec {
            Value::Null => ClaimRequest::default(),
            Value::Object(o) => {
                claim_request(o).map_err(|why| format!("`claims.{name}.{claim}`: {why}"))?
            }
            _ => return Err(format!("`claims.{name}.{claim}` must be null or an object")),
        };
        out.insert(claim.clone(), req);
    }
    Ok(out)
}

fn claim_request(o: &Map<String, Value>) -> Result<ClaimRequest, &'static str> {
    let essential = match o.get("essential") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`essential` must be true or false"),
    };
    let values = match o.get("values") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(a.clone()),
        Some(_) => return Err("`values` must be an array"),
    };
    Ok(ClaimRequest {
        essential,
        value: o.get("value").filter(|v| !v.is_null()).cloned(),
        values,
    })
}

/// Does a granted `scope` allow releasing `claim` about the user?
pub fn scope_allows(scope: &ScopeSet, claim: &str) -> bool {
    (scope.contains("profile") && PROFILE_CLAIMS.contains(&claim))
        || (scope.contains("email") && EMAIL_CLAIMS.contains(&claim))
}

/// The user's value of a profile or email claim, if they have one.
pub fn user_claim(user: &User, claim: &str) -> Option<Value> {
    let p = &user.profile;
    let text = |v: &Option<String>| v.as_ref().map(|s| json!(s));
    match claim {
        "email" => Some(json!(user.email)),
        "email_verified" => Some(json!(p.email_verified)),
        "preferred_username" => Some(json!(user.email)),
        "name" => text(&user.name),
        "given_name" => text(&p.given_name),
        "family_name" => text(&p.family_name),
        "locale" => text(&p.locale),
        "zoneinfo" => text(&p.zoneinfo),
        // Core §5.1: seconds since the epoch, a JSON number.
        "updated_at" => Some(json!(p.updated_at)),
        _ => None,
    }
}

/// What userinfo answers (§5.3.2): `sub` and every claim the scopes allow that
/// the user has a value for.
pub fn userinfo_claims(user: &User, scope: &ScopeSet) -> Value {
    let mut c = Map::new();
    c.insert("sub".into(), json!(user.id));
    for claim in EMAIL_CLAIMS.iter().chain(PROFILE_CLAIMS) {
        if scope_allows(scope, claim)
            && let Some(v) = user_claim(user, claim)
        {
            c.insert((*claim).into(), v);
        }
    }
    Value::Object(c)
}

/// The user claims the `id_token` member asked for that the scopes allow and
/// the user has a value for.
pub fn id_token_user_claims(
    user: &User,
    scope: &ScopeSet,
    req: &ClaimsRequest,
) -> Map<String, Value> {
    req.id_token
        .keys()
        .filter(|claim| scope_allows(scope, claim))
        .filter_map(|claim| Some((claim.clone(), user_claim(user, claim)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Profile, UserStatus};

    fn ana() -> User {
        User {
            id: "u1".into(),
            org_id: "o".into(),
            email: "ana@acme.test".into(),
            name: Some("Ana Lima".into()),
            password_hash: None,
            role: "developer".into(),
            groups: vec![],
            status: UserStatus::Active,
            created_at: 5,
            tokens_valid_after: 0,
            profile: Profile {
                given_name: Some("Ana".into()),
                family_name: None,
                locale: Some("pt-BR".into()),
                zoneinfo: Some("America/Sao_Paulo".into()),
                email_verified: true,
                updated_at: 7,
            },
        }
    }

    #[test]
    fn claims_parameter_members_are_parsed_and_bounded() {
        let r = ClaimsRequest::parse(
            r#"{"id_token":{"given_name":null,"acr":{"essential":true,"values":["urn:gatehouse:acr:pwd"]}},"userinfo":{"email":{"essential":false}},"x":1}"#,
        )
        .unwrap();
        assert_eq!(r.id_token.len(), 2);
        assert!(r.id_token["acr"].essential);
        assert_eq!(r.userinfo.len(), 1);
        assert_eq!(r.unmet_acr(), None);
        let stored = r.to_stored().unwrap();
        assert_eq!(ClaimsRequest::from_stored(Some(&stored)), r);
        for bad in [
            "not json",
            "[]",
            r#"{"id_token":[]}"#,
            r#"{"id_token":{"name":1}}"#,
            r#"{"id_token":{"name":{"essential":"yes"}}}"#,
            r#"{"userinfo":{"name":{"values":"a"}}}"#,
        ] {
            assert!(ClaimsRequest::parse(bad).is_err(), "{bad}");
        }
        let long = format!(r#"{{"id_token":{{"name":"{}"}}}}"#, "x".repeat(5000));
        assert!(ClaimsRequest::parse(&long).unwrap_err().contains("longer"));
        assert!(ClaimsRequest::parse("{}").unwrap().to_stored().is_none());
    }

    #[test]
    fn an_essential_acr_that_cannot_be_met_fails_a_voluntary_one_does_not() {
        let essential =
            ClaimsRequest::parse(r#"{"id_token":{"acr":{"essential":true,"value":"urn:x:mfa"}}}"#)
                .unwrap();
        assert!(essential.unmet_acr().is_some());
        let voluntary =
            ClaimsRequest::parse(r#"{"id_token":{"acr":{"value":"urn:x:mfa"}}}"#).unwrap();
        assert_eq!(voluntary.unmet_acr(), None);
    }

    #[test]
    fn userinfo_releases_what_the_scopes_allow_and_omits_what_is_missing() {
        let u = ana();
        let profile = userinfo_claims(&u, &ScopeSet::parse("openid profile").unwrap());
        assert_eq!(
            profile,
            json!({"sub":"u1","name":"Ana Lima","given_name":"Ana","preferred_username":"ana@acme.test",
                   "locale":"pt-BR","zoneinfo":"America/Sao_Paulo","updated_at":7})
        );
        let email = userinfo_claims(&u, &ScopeSet::parse("openid email").unwrap());
        assert_eq!(
            email,
            json!({"sub":"u1","email":"ana@acme.test","email_verified":true})
        );
    }

    #[test]
    fn the_id_token_gets_requested_claims_within_the_scopes_only() {
        let u = ana();
        let req = ClaimsRequest::parse(
            r#"{"id_token":{"given_name":null,"family_name":{"essential":true},"email":null,"nickname":null}}"#,
        )
        .unwrap();
        let got = id_token_user_claims(&u, &ScopeSet::parse("openid profile").unwrap(), &req);
        // family_name: no value (left out although essential); email: not in scope;
        // nickname: not a claim Gatehouse keeps.
        assert_eq!(Value::Object(got), json!({"given_name":"Ana"}));
    }
}
